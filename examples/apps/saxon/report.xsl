<?xml version="1.0" encoding="UTF-8"?>
<!-- An XSLT 3.0 stylesheet (Saxon-HE runs XSLT 3.0): group, sort and count the languages. -->
<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text"/>
  <xsl:template match="/languages">
    <xsl:for-each-group select="language" group-by="@typing">
      <xsl:sort select="current-grouping-key()"/>
      <xsl:value-of select="current-grouping-key()"/>
      <xsl:text>: </xsl:text>
      <xsl:value-of select="sort(current-group()/@name)" separator=", "/>
      <xsl:text>&#10;</xsl:text>
    </xsl:for-each-group>
    <xsl:for-each select="language">
      <xsl:sort select="number(@year)"/>
      <xsl:if test="position() = 1">
        <xsl:value-of select="'oldest: ' || @name || ' (' || @year || ')'"/>
      </xsl:if>
    </xsl:for-each>
    <xsl:text>&#10;</xsl:text>
  </xsl:template>
</xsl:stylesheet>
